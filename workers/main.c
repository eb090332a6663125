/* vtn-worker: OpenADR 2.0b handlers and the management API over Redis,
 * serving every live gateway over ZeroMQ. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtn/log.h"
#include "wk_api.h"
#include "wk_oadr.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

int main(int argc, char **argv)
{
    vtn_log_init("worker");
    static wk_worker w; /* large (batch slots point into it); lives for the process */
    char err[512];
    int st = vtn_config_start(wk_cfg_items, wk_cfg_nitems, &w.cfg, argc, argv, "vtn-worker",
                              "OpenADR 2.0b worker: takes requests from the gateways over "
                              "ZeroMQ, runs the OpenADR and management API handlers against "
                              "Redis, and answers.");
    if (st >= 0)
        return st;
    int policy;
    if (wk_config_check(&w.cfg, &policy, err, sizeof err) < 0) {
        fprintf(stderr, "vtn-worker: %s\n", err);
        vtn_config_free(wk_cfg_items, wk_cfg_nitems, &w.cfg);
        return 2;
    }
    if (!w.cfg.name[0]) {
        char host[200] = "worker";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        char *name = malloc(256);
        if (name == NULL)
            return 1;
        snprintf(name, 256, "%s:%ld", host, (long)getpid());
        free(w.cfg.name);
        w.cfg.name = name;
    }
    vtn_config_log(wk_cfg_items, wk_cfg_nitems, &w.cfg);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: zmq_poll returns EINTR at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (wk_oadr_init() < 0) {
        vtn_error("schemas", "msg=\"the OpenADR schemas do not compile; see above\"");
        vtn_config_free(wk_cfg_items, wk_cfg_nitems, &w.cfg);
        return 1;
    }
    /* The rooms above the core: each request kind starts with its room's entry. */
    w.entry[VTN_KIND_OADR] = &wk_oadr_entry;
    w.entry[VTN_KIND_API] = &wk_h_api;
    if (wk_api_init(&w, err, sizeof err) < 0 ||
        wk_worker_init(&w, policy, &stop_flag, err, sizeof err) < 0) {
        vtn_error("init", "err=\"%s\"", err);
        wk_worker_free(&w);
        wk_api_free(&w);
        wk_oadr_shutdown();
        vtn_config_free(wk_cfg_items, wk_cfg_nitems, &w.cfg);
        return 1;
    }
    if (vtn_ops_start(w.cfg.ops_listen, wk_metrics_render, wk_ready, &w, &w.ops, err, sizeof err) <
        0) {
        vtn_error("ops_listen", "addr=%s err=\"%s\"", w.cfg.ops_listen, err);
        wk_worker_free(&w);
        wk_api_free(&w);
        wk_oadr_shutdown();
        vtn_config_free(wk_cfg_items, wk_cfg_nitems, &w.cfg);
        return 1;
    }
    vtn_info("ops_listen", "port=%d", vtn_ops_port(w.ops));
    wk_worker_run(&w);
    vtn_ops_stop(&w.ops);
    wk_worker_free(&w);
    wk_api_free(&w);
    wk_oadr_shutdown();
    vtn_config_free(wk_cfg_items, wk_cfg_nitems, &w.cfg);
    return 0;
}
