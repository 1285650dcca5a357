/* handles.c - the list of open handles (see handles.h). */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "handles.h"

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fh *open_list;

void fh_track(struct fh *fh)
{
	pthread_mutex_lock(&open_lock);
	fh->prev = NULL;
	fh->next = open_list;
	if (open_list != NULL)
		open_list->prev = fh;
	open_list = fh;
	pthread_mutex_unlock(&open_lock);
}

void fh_untrack(struct fh *fh)
{
	pthread_mutex_lock(&open_lock);
	if (fh->prev != NULL)
		fh->prev->next = fh->next;
	else
		open_list = fh->next;
	if (fh->next != NULL)
		fh->next->prev = fh->prev;
	pthread_mutex_unlock(&open_lock);
}

void fh_free_all(void (*free_dir)(struct fh *fh))
{
	while (open_list != NULL) {
		struct fh *fh = open_list;

		fh_untrack(fh);
		if (fh->type == FH_DIR) {
			free_dir(fh);
			continue;
		}
		if (fh->type == FH_FD)
			close(fh->fd);
		free(fh);
	}
}
