/* handles.c - the list of open handles (see handles.h). */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "dboxfs.h"
#include "handles.h"

void fh_track(struct dboxfs *fs, struct fh *fh)
{
	pthread_mutex_lock(&fs->handles.lock);
	fh->prev = NULL;
	fh->next = fs->handles.head;
	if (fs->handles.head != NULL)
		fs->handles.head->prev = fh;
	fs->handles.head = fh;
	pthread_mutex_unlock(&fs->handles.lock);
}

void fh_untrack(struct dboxfs *fs, struct fh *fh)
{
	pthread_mutex_lock(&fs->handles.lock);
	if (fh->prev != NULL)
		fh->prev->next = fh->next;
	else
		fs->handles.head = fh->next;
	if (fh->next != NULL)
		fh->next->prev = fh->prev;
	pthread_mutex_unlock(&fs->handles.lock);
}

void fh_free_all(struct dboxfs *fs, void (*free_dir)(struct fh *fh))
{
	while (fs->handles.head != NULL) {
		struct fh *fh = fs->handles.head;

		fh_untrack(fs, fh);
		if (fh->type == FH_DIR) {
			free_dir(fh);
			continue;
		}
		if (fh->type == FH_FD)
			close(fh->fd);
		free(fh);
	}
}
