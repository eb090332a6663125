/* The worker's memory budget (VTN_WORKER_MEMORY): every request in flight
 * is charged what it will cost (its frame, and for an OpenADR body the tree
 * libxml2 builds from it) before anything is parsed, and gives it back when
 * its slot is released. A request that would pass the budget is refused
 * at once, so no mix of inputs can push a worker past its memory: 503 with
 * Retry-After when it may fit later, 413 when it never can. Like redis'
 * client_max_querybuf_len: the cap is checked where the bytes come in. */
#include <errno.h>

#include "vtn/log.h"
#include "wk_internal.h"

size_t wk_budget_cost(const wk_req *q, size_t frame_len)
{
    size_t cost = frame_len;
    if (q->env.kind == VTN_KIND_OADR)
        cost += (size_t)WK_PARSE_FACTOR * q->env.body.n;
    return cost;
}

int wk_budget_admit(wk_worker *w, wk_req *q, size_t frame_len)
{
    size_t cost = wk_budget_cost(q, frame_len);
    if (cost > w->mem_budget) {
        vtn_warn("over_budget", "req=%s bytes=%u cost=%zu budget=%zu msg=\"can never fit\"", q->rid,
                 q->env.body.n, cost, w->mem_budget);
        char msg[256];
        int n = snprintf(msg, sizeof msg,
                         "request body of %u bytes needs about %zu bytes of worker memory to "
                         "process, more than this worker's budget (%zu, VTN_WORKER_MEMORY)",
                         q->env.body.n, cost, w->mem_budget);
        atomic_fetch_add_explicit(&w->m.over_budget, 1, memory_order_relaxed);
        if (q->env.kind == VTN_KIND_API)
            wk_reply_json_error(q, 413, "%s", msg);
        else
            wk_reply(q, 413, "text/plain", msg, (size_t)n);
        return -ENOMEM;
    }
    if (w->mem_used + cost > w->mem_budget) {
        atomic_fetch_add_explicit(&w->m.over_budget, 1, memory_order_relaxed);
        vtn_warn("over_budget", "req=%s cost=%zu used=%zu budget=%zu msg=\"retry later\"", q->rid,
                 cost, w->mem_used, w->mem_budget);
        wk_reply_unavailable(q, "worker memory budget in use by other requests, retry later");
        return -ENOMEM;
    }
    w->mem_used += cost;
    q->cost = cost;
    return 0;
}

void wk_budget_release(wk_worker *w, wk_req *q)
{
    w->mem_used -= q->cost;
    q->cost = 0;
}
