/* The ops listener every process has: GET /healthz, /readyz, /metrics.
 * Runs in its own thread with blocking sockets; answers one request per
 * connection; bounded request size and a short socket timeout. */
#ifndef VTN_OPS_H
#define VTN_OPS_H

#include <stddef.h>

#include "vtn/buf.h"

typedef struct vtn_ops vtn_ops;

/* Appends the Prometheus text for /metrics; called on the ops thread. 0 or <0. */
typedef int (*vtn_ops_metrics_fn)(vtn_buf *out, void *ud);
/* 1 when ready; otherwise 0 and a reason in why. NULL means always ready. */
typedef int (*vtn_ops_ready_fn)(void *ud, char *why, size_t whylen);

/* Binds listen ("127.0.0.1:9100"; port 0 picks one) and starts the thread.
 * 0 or a negative errno with a message in err. */
int vtn_ops_start(const char *listen, vtn_ops_metrics_fn metrics, vtn_ops_ready_fn ready, void *ud,
                  vtn_ops **out, char *err, size_t errlen);
int vtn_ops_port(const vtn_ops *ops);
/* Marks the process as draining: /readyz answers 503 from now on. */
void vtn_ops_set_draining(vtn_ops *ops);
void vtn_ops_stop(vtn_ops **ops); /* joins the thread, sets *ops to NULL */

#endif
