/* What vtn-bench's modes (main.c) and vtn-bench fleet (bn_fleet.c) share:
 * the run id, the hard wall-clock cap, the address a server certificate
 * must name, the error total of a phase, a JSON line on stdout. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtn/id.h"

#include "bn_internal.h"

static int run_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 24)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

int bn_run_id(const char *given, char *out, size_t len)
{
    if (*given) {
        if (!run_id_valid(given))
            return -EINVAL;
        snprintf(out, len, "%s", given);
        return 0;
    }
    uint64_t r = 0;
    if (vtn_random64(&r) < 0)
        r = (uint64_t)getpid() * 2654435761u;
    snprintf(out, len, "%08x", (unsigned)(r & 0xffffffffu));
    return 0;
}

static void on_alarm(int sig)
{
    static const char msg[] = "vtn-bench: hard wall-clock limit reached, exiting\n";
    (void)sig;
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

void bn_hard_cap(unsigned seconds)
{
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);
    alarm(seconds);
}

void bn_addr_ip(const struct sockaddr_storage *a, char *out, size_t len)
{
    const void *ip = a->ss_family == AF_INET6
                         ? (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)a)->sin_addr;
    if (inet_ntop(a->ss_family, ip, out, (socklen_t)len) == NULL && len)
        out[0] = '\0';
}

uint64_t bn_counts_errors(const bn_counts *k)
{
    return k->http + k->oadr + k->timeouts + k->conn + k->io + k->tls;
}

void bn_print_json(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(j);
}
