#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "bn_internal.h"

int bn_pids_parse(const char *s, bn_proc *out, int max, char *err, size_t errlen)
{
    int n = 0;
    const char *p = s;
    if (s == NULL || *s == '\0')
        return 0;
    while (*p) {
        const char *eq = strchr(p, '=');
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        if (eq == NULL || eq > end || eq == p || (size_t)(eq - p) >= BN_ROLE_MAX) {
            snprintf(err, errlen, "--pids: expected role=PID in \"%.*s\"", (int)(end - p), p);
            return -EINVAL;
        }
        for (const char *c = p; c < eq; c++) {
            if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-') {
                snprintf(err, errlen,
                         "--pids: role \"%.*s\" may hold only letters, digits, _ and -",
                         (int)(eq - p), p);
                return -EINVAL;
            }
        }
        char num[24];
        size_t nl = (size_t)(end - eq - 1);
        char *ep;
        if (nl == 0 || nl >= sizeof num) {
            snprintf(err, errlen, "--pids: bad PID in \"%.*s\"", (int)(end - p), p);
            return -EINVAL;
        }
        memcpy(num, eq + 1, nl);
        num[nl] = '\0';
        errno = 0;
        long pid = strtol(num, &ep, 10);
        if (*ep != '\0' || errno || pid <= 0 || pid > 0x3fffffff) {
            snprintf(err, errlen, "--pids: bad PID \"%s\"", num);
            return -EINVAL;
        }
        if (n == max) {
            snprintf(err, errlen, "--pids: at most %d processes", max);
            return -EINVAL;
        }
        memset(&out[n], 0, sizeof out[n]);
        memcpy(out[n].role, p, (size_t)(eq - p));
        out[n].pid = (pid_t)pid;
        n++;
        p = *end ? end + 1 : end;
    }
    return n;
}

static ssize_t read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, len - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    return n;
}

/* utime and stime (fields 14 and 15) of a /proc/PID/stat text. */
static int parse_stat_times(const char *text, uint64_t *ut_out, uint64_t *st_out)
{
    /* comm is in parentheses and may itself hold ") ", so start after the last ')'. */
    const char *p = strrchr(text, ')');
    if (p == NULL)
        return -EINVAL;
    p++;
    /* Fields after comm: state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
     * cmajflt utime(14) stime(15). */
    for (int field = 3; field < 14; field++) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return -EINVAL;
        while (*p && *p != ' ')
            p++;
    }
    char *end;
    errno = 0;
    unsigned long long ut = strtoull(p, &end, 10);
    if (end == p || errno)
        return -EINVAL;
    p = end;
    unsigned long long st = strtoull(p, &end, 10);
    if (end == p || errno)
        return -EINVAL;
    *ut_out = ut;
    *st_out = st;
    return 0;
}

int bn_proc_parse_stat(const char *text, uint64_t *ticks)
{
    uint64_t ut, st;
    if (parse_stat_times(text, &ut, &st) < 0)
        return -EINVAL;
    *ticks = ut + st;
    return 0;
}

int bn_proc_ticks(pid_t pid, uint64_t *ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    ssize_t n = read_small(path, buf, sizeof buf);
    if (n < 0)
        return n == -ENOENT || n == -ESRCH ? -ENOENT : -EIO;
    return bn_proc_parse_stat(buf, ticks) < 0 ? -EIO : 0;
}

int bn_machine_ticks(uint64_t *busy, uint64_t *total)
{
    char buf[4096];
    if (read_small("/proc/stat", buf, sizeof buf) < 0 || strncmp(buf, "cpu ", 4) != 0)
        return -EIO;
    /* user nice system idle iowait irq softirq steal (guest is inside user already) */
    unsigned long long v[8] = {0};
    const char *p = buf + 4;
    for (int i = 0; i < 8; i++) {
        char *end;
        v[i] = strtoull(p, &end, 10);
        if (end == p)
            break;
        p = end;
    }
    *total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    *busy = *total - v[3] - v[4];
    return 0;
}

/* One "Name:   1234 kB" line of /proc/PID/status; -1 when absent. */
static long long status_kb(const char *text, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, nl) != 0 || p[nl] != ':')
            continue;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p + nl + 1, &end, 10);
        if (end == p + nl + 1 || errno)
            return -1;
        return (long long)v;
    }
    return -1;
}

int bn_proc_parse_status(const char *text, uint64_t *rss_kb, uint64_t *anon_kb)
{
    long long rss = status_kb(text, "VmRSS"), anon = status_kb(text, "RssAnon");
    if (rss < 0)
        return -EINVAL;
    *rss_kb = (uint64_t)rss;
    *anon_kb = anon < 0 ? 0 : (uint64_t)anon; /* RssAnon exists since Linux 4.5 */
    return 0;
}

int bn_proc_mem(pid_t pid, uint64_t *rss_kb, uint64_t *anon_kb)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    ssize_t n = read_small(path, buf, sizeof buf);
    if (n < 0)
        return n == -ENOENT || n == -ESRCH ? -ENOENT : -EIO;
    return bn_proc_parse_status(buf, rss_kb, anon_kb) < 0 ? -EIO : 0;
}

int bn_proc_usage_read(pid_t pid, bn_proc_usage *u)
{
    char path[64], buf[8192];
    memset(u, 0, sizeof *u);
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    ssize_t n = read_small(path, buf, sizeof buf);
    if (n < 0)
        return n == -ENOENT || n == -ESRCH ? -ENOENT : -EIO;
    if (parse_stat_times(buf, &u->utime, &u->stime) < 0)
        return -EIO;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (read_small(path, buf, sizeof buf) > 0) {
        long long hwm = status_kb(buf, "VmHWM");
        u->hwm_kb = hwm < 0 ? 0 : (uint64_t)hwm;
    }
    /* context switches are counted per thread: sum them over the tasks */
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char tp[320];
        if (e->d_name[0] == '.')
            continue;
        snprintf(tp, sizeof tp, "/proc/%d/task/%s/status", (int)pid, e->d_name);
        if (read_small(tp, buf, sizeof buf) <= 0)
            continue;
        long long v = status_kb(buf, "voluntary_ctxt_switches");
        long long nv = status_kb(buf, "nonvoluntary_ctxt_switches");
        u->ctx += (uint64_t)(v > 0 ? v : 0) + (uint64_t)(nv > 0 ? nv : 0);
    }
    closedir(d);
    return 0;
}
