/* The slow-work thread: key generation, certificate and CRL signing, and
 * the parse of large documents run here, never on the loop that answers
 * polls and heartbeats (redis' bio.c threads play the same part).
 *
 * One helper thread, a bounded job queue, and an eventfd the loop polls
 * next to the gateway sockets: the thread writes it when a job is done,
 * and the loop runs that request's step again. A request is touched by one
 * thread at a time: the loop hands it over under the mutex and takes it
 * back under the mutex, so the handoff orders every write. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vtn/log.h"
#include "wk_internal.h"

struct wk_slow {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wk_req *todo[WK_SLOW_QUEUE]; /* ring: handed to the thread */
    int todo_head, todo_n;
    wk_req *done[WK_SLOW_QUEUE]; /* ring: back to the loop */
    int done_head, done_n;
    int inflight; /* todo + running + done: never above WK_SLOW_QUEUE */
    int efd;
    int stop;
    int started;
    wk_codec *codec; /* the thread's own (a codec is per thread) */
};

static _Thread_local wk_codec *tl_codec;

wk_codec *wk_slow_codec(wk_worker *w)
{
    return tl_codec ? tl_codec : w->codec;
}

static void push(wk_req **ring, int *head, int *n, wk_req *q)
{
    ring[(*head + *n) % WK_SLOW_QUEUE] = q;
    (*n)++;
}

static wk_req *pop(wk_req **ring, int *head, int *n)
{
    if (*n == 0)
        return NULL;
    wk_req *q = ring[*head];
    *head = (*head + 1) % WK_SLOW_QUEUE;
    (*n)--;
    return q;
}

static void *thread_main(void *arg)
{
    wk_slow *s = arg;
    tl_codec = s->codec;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && s->todo_n == 0)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop)
            break;
        wk_req *q = pop(s->todo, &s->todo_head, &s->todo_n);
        pthread_mutex_unlock(&s->mu);
        q->slow_fn(q, q->st);
        pthread_mutex_lock(&s->mu);
        push(s->done, &s->done_head, &s->done_n, q);
        uint64_t one = 1;
        if (write(s->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            vtn_warn("slow_wake", "err=\"%s\"", strerror(errno));
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int wk_slow_start(wk_worker *w, char *err, size_t errlen)
{
    wk_slow *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->codec = wk_codec_new();
    if (s->efd < 0 || s->codec == NULL) {
        snprintf(err, errlen, "slow-work thread: %s",
                 s->efd < 0 ? strerror(errno) : "cannot create its XML codec");
        if (s->efd >= 0)
            close(s->efd);
        wk_codec_free(&s->codec);
        free(s);
        return -ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int rc = pthread_create(&s->th, NULL, thread_main, s);
    if (rc != 0) {
        snprintf(err, errlen, "slow-work thread: %s", strerror(rc));
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        close(s->efd);
        wk_codec_free(&s->codec);
        free(s);
        return -rc;
    }
    s->started = 1;
    w->slow = s;
    return 0;
}

void wk_slow_stop(wk_worker *w)
{
    wk_slow *s = w->slow;
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    close(s->efd);
    wk_codec_free(&s->codec);
    free(s);
    w->slow = NULL;
}

int wk_slow_fd(const wk_worker *w)
{
    return w->slow ? w->slow->efd : -1;
}

/* Without the thread (unit tests, the fuzz target) jobs run inline and wait
 * in this list for wk_slow_collect, so the step still runs from the loop,
 * never from inside itself. */
static wk_req *inline_done[WK_SLOW_QUEUE];
static int inline_n;

int wk_slow_run(wk_req *q, void (*fn)(wk_req *q, void *st))
{
    wk_slow *s = q->w->slow;
    q->slow_fn = fn;
    if (s == NULL) {
        if (inline_n == WK_SLOW_QUEUE)
            return -EAGAIN;
        fn(q, q->st);
        q->phase = WK_REQ_SLOW;
        inline_done[inline_n++] = q;
        return 0;
    }
    pthread_mutex_lock(&s->mu);
    if (s->inflight == WK_SLOW_QUEUE) {
        pthread_mutex_unlock(&s->mu);
        return -EAGAIN;
    }
    s->inflight++;
    q->phase = WK_REQ_SLOW;
    push(s->todo, &s->todo_head, &s->todo_n, q);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Runs the step of one request whose slow work is done. */
static void resume(wk_req *q)
{
    q->phase = WK_REQ_RUNNING;
    q->slow_fn = NULL;
    q->h->step(q, q->st);
}

int wk_slow_collect(wk_worker *w)
{
    int n = 0;
    wk_slow *s = w->slow;
    if (s == NULL) {
        while (inline_n > 0) {
            wk_req *q = inline_done[0];
            memmove(inline_done, inline_done + 1, (size_t)--inline_n * sizeof *inline_done);
            resume(q);
            n++;
        }
        return n;
    }
    uint64_t v;
    if (read(s->efd, &v, sizeof v) < 0 && errno != EAGAIN)
        vtn_warn("slow_wake", "err=\"%s\"", strerror(errno));
    for (;;) {
        pthread_mutex_lock(&s->mu);
        wk_req *q = pop(s->done, &s->done_head, &s->done_n);
        if (q)
            s->inflight--;
        pthread_mutex_unlock(&s->mu);
        if (q == NULL)
            return n;
        resume(q);
        n++;
    }
}

void wk_slow_wait(wk_worker *w, int timeout_ms)
{
    int fd = wk_slow_fd(w);
    if (fd < 0)
        return;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    (void)poll(&p, 1, timeout_ms);
}
