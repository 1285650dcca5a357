/* verified.c - the table of verified messages (see verified.h). */
#include "verified.h"

static struct verified *verified_slot(struct verified_cache *vc,
				      uint64_t ino)
{
	return &vc->slots[(ino * 0x9e3779b97f4a7c15ull) >> 52];
}

bool verified_has(struct verified_cache *vc, uint64_t ino,
		  const struct dbox_msg *m)
{
	struct verified *v = verified_slot(vc, ino);
	bool hit;

	pthread_mutex_lock(&vc->lock);
	hit = v->ino == ino && v->file_id == dbox_msg_file_id(m) &&
		v->offset == dbox_msg_file_offset(m);
	pthread_mutex_unlock(&vc->lock);
	return hit;
}

void verified_add(struct verified_cache *vc, uint64_t ino,
		  const struct dbox_msg *m)
{
	struct verified *v = verified_slot(vc, ino);

	pthread_mutex_lock(&vc->lock);
	*v = (struct verified){ ino, dbox_msg_file_id(m),
				dbox_msg_file_offset(m) };
	pthread_mutex_unlock(&vc->lock);
}
