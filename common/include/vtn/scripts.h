/* The Lua scripts of the VTN: one file per script in common/lua/, embedded
 * into the binary at build time (cmake/embed.cmake) and loaded by this one
 * loader for workers and scheduler.
 *
 * Before SCRIPT LOAD the loader puts one line in front of each file that
 * defines, as Lua locals, the data model's constants from vtn/keys.h: the
 * hash fields (F_VEN_NAME = "n" ... for VTN_F_VEN_NAME ...), the queue
 * entry kinds and separator (KIND_CANCEL, KIND_REREG, SEP), QUEUE_MAX,
 * MEMO_TTL_S, AFTER_EXPIRY_S and VEN_CANCELLING. A script never spells one
 * of them; line N of a file is line N + 1 in Redis' error messages.
 *
 * A file may start with a Redis 7 shebang ("#!lua flags=allow-oom"): it
 * stays the first line and the constants line follows it (line numbers
 * still shift by one from line 2 on). allow-oom lets a script run while
 * Redis is at maxmemory; only scripts that free memory declare it. */
#ifndef VTN_SCRIPTS_H
#define VTN_SCRIPTS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#define VTN_SCRIPT_SHA_SIZE 41 /* 40 hex digits + NUL */

/* One embedded file, e.g. {"pop.lua", bytes, length}; no NUL at the end. */
typedef struct vtn_script_file {
    const char *name;
    const unsigned char *src;
    size_t len;
} vtn_script_file;

extern const vtn_script_file vtn_script_files[];
extern const size_t vtn_script_nfiles;

/* The file of script `name` (common/lua/<name>.lua), or NULL. */
const vtn_script_file *vtn_script_find(const char *name);

/* Writes the constants line (NUL-terminated, ends in '\n') into out.
 * Returns its length, or -ENOSPC when outlen is too small. */
int vtn_script_prelude(char *out, size_t outlen);

/* The text SCRIPT LOAD gets for file f: its shebang line if any, the
 * constants line, the rest of the file. *out is malloc'd (the caller frees
 * it), *outlen its length (no NUL). 0, -ENOMEM, or -ENOSPC (constants line
 * too long). */
int vtn_script_source(const vtn_script_file *f, char **out, size_t *outlen);

/* SCRIPT LOADs script `name` (the constants line + its file) on c and puts
 * its sha into sha. 0; -ENOENT no such script; -EIO the connection failed
 * (c cannot be reused: the caller frees it); -EPROTO Redis refused the
 * script. err says why on every error. */
int vtn_script_load(redisContext *c, const char *name, char sha[VTN_SCRIPT_SHA_SIZE], char *err,
                    size_t errlen);

/* 1 when r is Redis' NOSCRIPT error: its script cache was emptied (restart,
 * SCRIPT FLUSH); load the script again and repeat the call. */
int vtn_script_is_noscript(const redisReply *r);

/* EVALSHA of script `name` for callers that wait on each reply (the
 * scheduler): loads it first when sha is "" and once more after a NOSCRIPT,
 * then repeats the call. argv holds the nkeys keys then the arguments.
 * Returns the reply (the caller frees it; it may be a Redis error) or NULL
 * when the connection failed or the script could not be loaded (logged). */
redisReply *vtn_script_eval(redisContext *c, const char *name, char sha[VTN_SCRIPT_SHA_SIZE],
                            int nkeys, int argc, const char **argv);

#endif
