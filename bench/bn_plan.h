/* The capacity model behind `vtn-bench plan` and the run picture behind
 * `vtn-bench svg`. Both read the run files of the bench result JSON
 * contract ("schema": "openvtn-bench/1", docs/bench.md); the model and its
 * assumptions are in docs/capacity.md. */
#ifndef BN_PLAN_H
#define BN_PLAN_H

#include <jansson.h>
#include <stddef.h>

#define BN_RUN_SCHEMA "openvtn-bench/1"

/* The contract's "ops" names, in its order. */
typedef enum bn_op {
    BN_OP_POLL,
    BN_OP_REGISTER,
    BN_OP_HANDSHAKE,
    BN_OP_RESUMPTION,
    BN_OP_REGISTER_REPORT,
    BN_OP_UPDATE_REPORT,
    BN_OP_REPORT_INTERVAL,
    BN_OP_EVENT_DELIVERY,
    BN_OP_CREATED_EVENT,
    BN_OP_PUSH,
    BN_OP_N
} bn_op;

/* The VTN processes whose CPU the model prices ("processes" in a run). */
typedef enum bn_role { BN_ROLE_GATEWAY, BN_ROLE_WORKER, BN_ROLE_REDIS, BN_ROLE_N } bn_role;

/* The operations with a cost of their own, each fitted from the runs. */
typedef enum bn_kind {
    BN_KIND_POLL,
    BN_KIND_REGISTER,
    BN_KIND_HANDSHAKE,
    BN_KIND_RESUMPTION,
    BN_KIND_REPORT_INTERVAL,
    BN_KIND_EVENT_DELIVERY,
    BN_KIND_N
} bn_kind;

extern const char *const bn_op_names[BN_OP_N];
extern const char *const bn_role_names[BN_ROLE_N];
extern const char *const bn_kind_names[BN_KIND_N];

/* What the model needs of one run file. */
typedef struct bn_runfile {
    char name[256]; /* the file, for messages */
    char scenario[32];
    double duration_s;
    double count[BN_OP_N], per_s[BN_OP_N]; /* 0 when absent */
    int has_cpu;                           /* "processes" held gateway, worker and redis */
    double cpu_s[BN_ROLE_N];
    int has_mem; /* "redis" held used_memory_start/end */
    double mem_start, mem_end, bytes_per_ven;
    double vens;
    int pool[BN_ROLE_N]; /* gateways, workers, 1 redis (config; 1 when absent) */
} bn_runfile;

/* A JSON file, or NULL with "path: why" (the line and column when it is not JSON) in
 * err (bn_svg.c). */
json_t *bn_json_load(const char *path, char *err, size_t errlen);

/* Reads a run file: 0, or -EINVAL/-errno with the file and the field at fault in err. */
int bn_runfile_load(const char *path, bn_runfile *run, char *err, size_t errlen);

#define BN_CURVE_MAX 32

/* CPU seconds per request as a function of requests/s, one role, sorted by rate. */
typedef struct bn_curve {
    int n;
    double rate[BN_CURVE_MAX];
    double per_req[BN_CURVE_MAX];
    int runs[BN_CURVE_MAX]; /* runs averaged into each point (rates within 2 %) */
} bn_curve;

typedef struct bn_model {
    bn_curve curve[BN_ROLE_N];                /* from the poll-only runs */
    double cost[BN_KIND_N][BN_ROLE_N];        /* marginal CPU seconds per operation */
    int fitted[BN_KIND_N];                    /* runs each kind's cost comes from; 0 = unknown */
    int pool[BN_ROLE_N];                      /* replicas during the calibration */
    double bytes_per_ven, bytes_per_interval; /* < 0: not measured */
    int runs, runs_unused;
    /* How far requests of different kinds share wake-ups, per role: 1 = all
     * at their total rate, 0 = each kind at its own; fitted from runs with
     * several kinds of request, all priced; 1 when there is none. */
    double share[BN_ROLE_N];
    int share_runs;
    int wake_own;     /* 1: share taken as 0 (the upper bound) */
    char notes[1024]; /* what the fit left out, one sentence a line */
} bn_model;

/* Fits the model to n runs. 0, or -EINVAL when no poll-only run with CPU
 * figures is among them (the curve everything else is priced against). */
int bn_plan_fit(const bn_runfile *runs, int n, bn_model *m, char *err, size_t errlen);

/* Where a prediction left the measured range; a bit per role. */
typedef struct bn_range {
    unsigned below, above;
    double rate[BN_ROLE_N]; /* the per-replica request rate the curve was read at */
} bn_range;

/* CPU cores (seconds per second) each role needs for ops at per_s (indexed
 * by bn_op), with replicas[r] processes sharing role r's requests. */
void bn_plan_predict(const bn_model *m, const double per_s[BN_OP_N], const int replicas[BN_ROLE_N],
                     double cores[BN_ROLE_N], bn_range *range);

/* The fleet `vtn-bench plan` sizes. */
typedef struct bn_fleet {
    double vens;
    double poll_interval_s;
    double reconnect_interval_s; /* a new connection per VEN this often */
    double resumption_share;
    double report_interval_s; /* 0: no telemetry */
    double intervals_per_report;
    double register_interval_s;
    double events_per_day;
    double push_share;
    double headroom; /* 0.3 = 30 % */
    double cpu_per_replica;
    double redis_max_gb;
    double telemetry_maxlen, telemetry_retention_s;
} bn_fleet;

typedef struct bn_plan {
    double per_s[BN_OP_N];
    double cores[BN_ROLE_N]; /* needed at the replica counts below, before headroom */
    int replicas[BN_ROLE_N]; /* gateways, workers; redis: primaries' cores needed (ceil) */
    double redis_bytes;      /* before headroom */
    double redis_gb;         /* with headroom */
    double redis_cores;      /* with headroom */
    double us_per_op[BN_KIND_N][BN_ROLE_N]; /* at the fleet's rate, wake-ups shared out */
    int redis_cpu_over;                     /* one primary's single core is not enough */
    double growth_cpu, growth_mem; /* fleet multiples at which Redis CPU / memory run out */
    const char *first;             /* "Redis CPU" or "Redis memory" */
    bn_range range;
    unsigned missing; /* bit per bn_kind the fleet uses but no run measured */
    /* The same fleet if no wake-up were shared between kinds (wake_own). */
    int upper_replicas[BN_ROLE_N];
    double upper_cores[BN_ROLE_N];
} bn_plan;

int bn_plan_fleet(const bn_model *m, const bn_fleet *f, bn_plan *p, char *err, size_t errlen);

/* `vtn-bench plan ...` and `vtn-bench svg RUN.json OUT.svg`: exit statuses. */
int bn_plan_main(int argc, char **argv);
int bn_svg_main(int argc, char **argv);

/* Draws a run's timeline: 0, or -EINVAL/-errno with a message in err. */
int bn_svg_from_json(const char *json_path, const char *svg_path, char *err, size_t errlen);

#endif
