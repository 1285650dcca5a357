/* reply-wrap.c - libfuse's replies, counted for the reply-once assert
 * (reply.h): the daemon is linked with -Wl,--wrap=fuse_reply_X for each
 * reply it makes, so its calls land here and go on to libfuse. */
#include "dboxfs.h"
#include "reply.h"

#define WRAP(name, type, params, args) \
	type __real_##name params; \
	type __wrap_##name params; \
	type __wrap_##name params \
	{ \
		reply_counted(req); \
		reply_release_store(req); \
		return __real_##name args; \
	}

WRAP(fuse_reply_err, int, (fuse_req_t req, int err), (req, err))
WRAP(fuse_reply_entry, int,
     (fuse_req_t req, const struct fuse_entry_param *e), (req, e))
WRAP(fuse_reply_create, int,
     (fuse_req_t req, const struct fuse_entry_param *e,
      const struct fuse_file_info *fi), (req, e, fi))
WRAP(fuse_reply_attr, int,
     (fuse_req_t req, const struct stat *attr, double attr_timeout),
     (req, attr, attr_timeout))
WRAP(fuse_reply_readlink, int, (fuse_req_t req, const char *link),
     (req, link))
WRAP(fuse_reply_open, int,
     (fuse_req_t req, const struct fuse_file_info *fi), (req, fi))
WRAP(fuse_reply_write, int, (fuse_req_t req, size_t count), (req, count))
WRAP(fuse_reply_buf, int, (fuse_req_t req, const char *buf, size_t size),
     (req, buf, size))
WRAP(fuse_reply_data, int,
     (fuse_req_t req, struct fuse_bufvec *bufv,
      enum fuse_buf_copy_flags flags), (req, bufv, flags))
WRAP(fuse_reply_statfs, int, (fuse_req_t req, const struct statvfs *stbuf),
     (req, stbuf))
WRAP(fuse_reply_xattr, int, (fuse_req_t req, size_t count), (req, count))

void __real_fuse_reply_none(fuse_req_t req);
void __wrap_fuse_reply_none(fuse_req_t req);
void __wrap_fuse_reply_none(fuse_req_t req)
{
	reply_counted(req);
	reply_release_store(req);
	__real_fuse_reply_none(req);
}
