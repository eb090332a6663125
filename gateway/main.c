/* vtn-gateway: the OpenADR 2.0b VTN's HTTP front end. See docs/gateway.md. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "gw_internal.h"
#include "vtn/log.h"

#define SUMMARY                                                                                    \
    "OpenADR 2.0b VTN gateway: HTTP/1.1 front end that hands requests to vtn-worker processes "    \
    "over ZeroMQ.\n\n"                                                                             \
    "  vtn-gateway --push-check https://HOST[:PORT][/PATH] [--flag value ...]\n"                   \
    "      checks the TLS client used for pushes to a VEN, with this gateway's settings\n"         \
    "      (VTN_PUSH_CERT, VTN_PUSH_CA, VTN_PUSH_PROTOCOLS, VTN_PUSH_TIMEOUT): connects to HOST\n" \
    "      (port 443 by default; the path is ignored), completes the TLS handshake, prints one\n"  \
    "      line (protocol, cipher, the VEN certificate's subject and OpenADR fingerprint, the\n"   \
    "      verify result) and sends no OpenADR message. Exit 0: the VEN's certificate verified\n"  \
    "      and the VEN accepted ours; 1: it did not (the reason on stderr); 2: usage or\n"         \
    "      configuration error."

/* Takes "--push-check URL" (or "--push-check=URL") out of argv so the
 * config table sees only its own flags. 1 found, 0 not, -1 no value. */
static int take_push_check(int *argc, char **argv, const char **url)
{
    for (int a = 1; a < *argc; a++) {
        int used;
        if (strcmp(argv[a], "--push-check") == 0) {
            if (a + 1 >= *argc)
                return -1;
            *url = argv[a + 1];
            used = 2;
        } else if (strncmp(argv[a], "--push-check=", 13) == 0) {
            *url = argv[a] + 13;
            used = 1;
        } else {
            continue;
        }
        memmove(&argv[a], &argv[a + used], (size_t)(*argc - a - used + 1) * sizeof *argv);
        *argc -= used;
        return 1;
    }
    return 0;
}

/* Every connection is a file descriptor: take what the hard limit allows and
 * keep the connection limit under it (with room for listeners, ZeroMQ and
 * Redis). */
static void fit_fd_limit(gw_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return;
    /* the API listener's slots are kept whole: they are how an operator
     * gets in while the OpenADR listener is under attack */
    long long room = (long long)rl.rlim_cur - 128 - cfg->api_max_connections;
    if (room < 16)
        room = 16;
    if (cfg->max_connections > room) {
        vtn_warn("config",
                 "var=VTN_MAX_CONNECTIONS value=%lld used=%lld msg=\"file descriptor "
                 "limit\"",
                 cfg->max_connections, room);
        cfg->max_connections = room;
    }
}

int main(int argc, char **argv)
{
    vtn_log_init("gateway");
    gw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[512] = "";
    const char *push_url = NULL;
    int check = take_push_check(&argc, argv, &push_url);
    if (check < 0) {
        fprintf(stderr, "vtn-gateway: --push-check needs a URL (https://host[:port]/path)\n");
        return 2;
    }
    int rc = vtn_config_start(gw__config_items, gw__config_nitems, &cfg, argc, argv, "vtn-gateway",
                              SUMMARY);
    if (rc >= 0)
        return rc; /* --help, --version (0) or a bad setting (2) */
    if (gw__config_check(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "vtn-gateway: %s\n", err);
        vtn_config_free(gw__config_items, gw__config_nitems, &cfg);
        return 2;
    }
    if (check) {
        /* no start-up log lines: the result line is the output */
        rc = gw_push_check(&cfg, push_url);
        vtn_config_free(gw__config_items, gw__config_nitems, &cfg);
        return rc;
    }
    vtn_config_log(gw__config_items, gw__config_nitems, &cfg);
    signal(SIGPIPE, SIG_IGN); /* a peer that went away is an error code, not a signal */
    fit_fd_limit(&cfg);

    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_server *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "vtn-gateway: out of memory\n");
        return 1;
    }
    rc = gw_server_init(s, &loop, &cfg, err, sizeof err);
    if (rc == 0) {
        gw_server_run(s);
        s->stopped = 1;
    } else {
        char q[600];
        vtn_error("start_failed", "error=%s", vtn_log_quote(q, sizeof q, err, strlen(err)));
    }
    gw_server_free(s);
    /* From here on we are exiting anyway: a late signal must not turn a
     * clean exit into "killed by SIGTERM". */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    free(s);
    uv_loop_close(&loop);
    vtn_config_free(gw__config_items, gw__config_nitems, &cfg);
    if (rc == 0)
        vtn_info("stopped", "exit=0");
    return rc == 0 ? 0 : 1;
}
