/* The Lua scripts of the worker. Each touches either keys of one VEN (all
 * with its {venID} hash tag) or exactly one global key, so they run on Redis
 * Cluster as well. docs/redis-keys.md describes the keys and the write order.
 *
 * The certificate scripts follow the same rule: certbind/certunbind touch
 * one VEN, certrevoke one certificate, crl the two keys of one CA (one hash
 * tag).
 *
 * Scripts that change a VEN's registration take a memo key
 * venreq:{venID}:<rid> and store their outcome there for 300 s: a retry of
 * the same request (same envelope id, another worker) gets the same outcome
 * instead of failing on state the first attempt already changed. Outcomes
 * are JSON arrays (cjson) so names with any character survive. */
#include "wk_internal.h"

/* KEYS[1] index key; ARGV[1] our venID; ARGV[2] a dangling venID we may replace, or "".
 * Returns the venID the key holds afterwards. */
static const char claim_lua[] = "local v = redis.call('GET', KEYS[1])\n"
                                "if (not v) or v == ARGV[1] or (ARGV[2] ~= '' and v == ARGV[2]) "
                                "then\n"
                                "  if v ~= ARGV[1] then redis.call('SET', KEYS[1], ARGV[1]) end\n"
                                "  return ARGV[1]\n"
                                "end\n"
                                "return v\n";

/* Compare-and-delete: KEYS[1] index key, ARGV[1] the venID it must hold. */
static const char cad_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                              "  return redis.call('DEL', KEYS[1])\n"
                              "end\n"
                              "return 0\n";

/* KEYS[1] ven:{id}. ARGV: registrationID, venName, fingerprint, pull, transportAddress,
 * reportOnly, xmlSignature, now. Empty name/fingerprint keep the stored ones. Returns 1,
 * or 0 when the VTN cancelled the registration meanwhile (st=c). */
static const char register_lua[] =
    "local k = KEYS[1]\n"
    "if redis.call('HGET', k, 'st') == 'c' then return 0 end\n"
    "if redis.call('EXISTS', k) == 0 then redis.call('HSET', k, 'ct', ARGV[8]) end\n"
    "redis.call('HSET', k, 'r', ARGV[1], 'rt', ARGV[8], 'pl', ARGV[4], 'ro', ARGV[6], 'xs', "
    "ARGV[7])\n"
    "if ARGV[2] ~= '' then redis.call('HSET', k, 'n', ARGV[2]) end\n"
    "if ARGV[3] ~= '' then redis.call('HSET', k, 'fp', ARGV[3]) end\n"
    "if ARGV[5] ~= '' then redis.call('HSET', k, 'ta', ARGV[5]) else redis.call('HDEL', k, "
    "'ta') end\n"
    "redis.call('HDEL', k, 'rq')\n"
    "return 1\n";

/* KEYS[1] ven:{id}. ARGV: venName, fingerprint, now. Creates a provisioned record unless
 * one exists (then 0: a retry of the same request, whose claimed id it is). */
static const char provision_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'pv', '1', 'ct', ARGV[3])\n"
    "if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'n', ARGV[1]) end\n"
    "if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'fp', ARGV[2]) end\n"
    "return 1\n";

/* KEYS: ven, venq, venpm. ARGV[1] the poll's request id, ARGV[2] the entry kinds this
 * worker can deliver (e.g. "CR"). Returns {entry or nil, number of entries dropped
 * because of an unknown kind}. The same request id gets the same entry again (a retry
 * on another worker); 'R|' entries are dropped silently once the VEN re-registered (rq
 * cleared). */
static const char pop_lua[] =
    "local pr = redis.call('HGET', KEYS[1], 'pr')\n"
    "if pr == ARGV[1] then\n"
    "  local m = redis.call('GET', KEYS[3])\n"
    "  if m then return {m, 0} end\n"
    "end\n"
    "local rq = redis.call('HGET', KEYS[1], 'rq')\n"
    "local skipped = 0\n"
    "for i = 1, 64 do\n"
    "  local m = redis.call('LPOP', KEYS[2])\n"
    "  if not m then return {false, skipped} end\n"
    "  local kind = string.sub(m, 1, 1)\n"
    "  if string.sub(m, 2, 2) ~= '|' or not string.find(ARGV[2], kind, 1, true) then\n"
    "    skipped = skipped + 1\n"
    "  elseif kind ~= 'R' or rq == '1' then\n"
    "    redis.call('HSET', KEYS[1], 'pr', ARGV[1])\n"
    "    redis.call('SET', KEYS[3], m, 'EX', 300)\n"
    "    return {m, skipped}\n"
    "  end\n"
    "end\n"
    "return {false, skipped}\n";

/* The VEN cancels its registration. KEYS: ven, venq, venpm, venreq. ARGV: registrationID,
 * fingerprint ("" without TLS). Returns JSON:
 *   ["463"] not registered, ["463f"] fingerprint mismatch, ["452"] other registrationID,
 *   ["U", name, fp, reg] registration removed, record kept,
 *   ["D", name, fp, reg] record deleted (the VTN had cancelled it already). */
static const char vencancel_lua[] =
    "local memo = redis.call('GET', KEYS[4])\n"
    "if memo then return memo end\n"
    "local h = redis.call('HMGET', KEYS[1], 'r', 'fp', 'st', 'n')\n"
    "if not h[1] then return '[\"463\"]' end\n"
    "if ARGV[2] ~= '' and h[2] and h[2] ~= ARGV[2] then return '[\"463f\"]' end\n"
    "if h[1] ~= ARGV[1] then return '[\"452\"]' end\n"
    "local kind = 'U'\n"
    "if h[3] == 'c' then\n"
    "  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])\n"
    "  kind = 'D'\n"
    "else\n"
    "  redis.call('HDEL', KEYS[1], 'r', 'rt', 'pl', 'ta', 'ro', 'xs', 'rq', 'pr')\n"
    "  redis.call('DEL', KEYS[2], KEYS[3])\n"
    "end\n"
    "local res = cjson.encode({kind, h[4] or '', h[2] or '', h[1]})\n"
    "redis.call('SET', KEYS[4], res, 'EX', 300)\n"
    "return res\n";

/* The VEN's oadrCanceledPartyRegistration. KEYS: ven, venq, venpm, venreq. ARGV:
 * registrationID ("" = not given), fingerprint. Returns JSON: ["463"], ["463f"], ["452"],
 * ["N"] nothing was being cancelled, ["D", name, fp, reg] record deleted. */
static const char canceled_lua[] =
    "local memo = redis.call('GET', KEYS[4])\n"
    "if memo then return memo end\n"
    "local h = redis.call('HMGET', KEYS[1], 'r', 'fp', 'st', 'n')\n"
    "if not h[1] then return '[\"463\"]' end\n"
    "if ARGV[2] ~= '' and h[2] and h[2] ~= ARGV[2] then return '[\"463f\"]' end\n"
    "if ARGV[1] ~= '' and h[1] ~= ARGV[1] then return '[\"452\"]' end\n"
    "if h[3] ~= 'c' then return '[\"N\"]' end\n"
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])\n"
    "local res = cjson.encode({'D', h[4] or '', h[2] or '', h[1]})\n"
    "redis.call('SET', KEYS[4], res, 'EX', 300)\n"
    "return res\n";

/* API DELETE. KEYS: ven, venq, venpm, venreq. ARGV: force (1/0), requestID of the
 * cancel to queue. Returns JSON: ["404"], ["409"] queue full,
 * ["202", name, fp, reg] cancel queued (or already), ["200", name, fp, reg] deleted. */
static const char apidelete_lua[] =
    "local memo = redis.call('GET', KEYS[4])\n"
    "if memo then return memo end\n"
    "if redis.call('EXISTS', KEYS[1]) == 0 then return '[\"404\"]' end\n"
    "local h = redis.call('HMGET', KEYS[1], 'r', 'st', 'n', 'fp')\n"
    "local res\n"
    "if ARGV[1] ~= '1' and h[1] then\n"
    "  if h[2] ~= 'c' then\n"
    "    if redis.call('LLEN', KEYS[2]) >= 64 then return '[\"409\"]' end\n"
    "    redis.call('HSET', KEYS[1], 'st', 'c')\n"
    "    redis.call('RPUSH', KEYS[2], 'C|' .. ARGV[2] .. '|' .. h[1])\n"
    "  end\n"
    "  res = cjson.encode({'202', h[3] or '', h[4] or '', h[1]})\n"
    "else\n"
    "  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])\n"
    "  res = cjson.encode({'200', h[3] or '', h[4] or '', h[1] or ''})\n"
    "end\n"
    "redis.call('SET', KEYS[4], res, 'EX', 300)\n"
    "return res\n";

/* API reregister. KEYS: ven, venq. ARGV: requestID of the message. Returns
 * "404", "409r" not registered, "409c" being cancelled, "409q" queue full,
 * "202" queued, "202p" already queued. */
static const char rereg_lua[] = "if redis.call('EXISTS', KEYS[1]) == 0 then return '404' end\n"
                                "local h = redis.call('HMGET', KEYS[1], 'r', 'st', 'rq')\n"
                                "if not h[1] then return '409r' end\n"
                                "if h[2] == 'c' then return '409c' end\n"
                                "if h[3] == '1' then\n"
                                "  for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do\n"
                                "    if string.sub(e, 1, 2) == 'R|' then return '202p' end\n"
                                "  end\n"
                                "end\n"
                                "if redis.call('LLEN', KEYS[2]) >= 64 then return '409q' end\n"
                                "redis.call('HSET', KEYS[1], 'rq', '1')\n"
                                "redis.call('RPUSH', KEYS[2], 'R|' .. ARGV[1])\n"
                                "return '202'\n";

/* Binds a VEN to the certificate the API just issued. KEYS: ven, venreq. ARGV[1] the
 * new fingerprint. Returns JSON ["404"] (no such VEN) or ["B", previous fingerprint or
 * ""]; the outcome is kept in venreq for 300 s, so a retry removes the same previous
 * index entry. */
static const char certbind_lua[] = "local memo = redis.call('GET', KEYS[2])\n"
                                   "if memo then return memo end\n"
                                   "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
                                   "  return '[\"404\"]'\n"
                                   "end\n"
                                   "local old = redis.call('HGET', KEYS[1], 'fp') or ''\n"
                                   "redis.call('HSET', KEYS[1], 'fp', ARGV[1])\n"
                                   "local res = cjson.encode({'B', old})\n"
                                   "redis.call('SET', KEYS[2], res, 'EX', 300)\n"
                                   "return res\n";

/* Revocation: KEYS[1] ven; ARGV[1] the revoked certificate's fingerprint. Removes the
 * binding only when the VEN is still bound to that certificate. Returns 1 or 0. */
static const char certunbind_lua[] = "if redis.call('HGET', KEYS[1], 'fp') == ARGV[1] then\n"
                                     "  redis.call('HDEL', KEYS[1], 'fp')\n"
                                     "  return 1\n"
                                     "end\n"
                                     "return 0\n";

/* KEYS[1] vtn:cert:<serial>. ARGV: now (ms), reason code. Marks the certificate
 * revoked unless it is already (the first revocation's time and reason stay).
 * Returns "404", "R" (revoked now) or "A" (already revoked). */
static const char certrevoke_lua[] = "if redis.call('EXISTS', KEYS[1]) == 0 then return '404' end\n"
                                     "if redis.call('HEXISTS', KEYS[1], 'rv') == 1 then\n"
                                     "  return 'A'\n"
                                     "end\n"
                                     "redis.call('HSET', KEYS[1], 'rv', ARGV[1], 'rr', ARGV[2])\n"
                                     "return 'R'\n";

/* KEYS: vtn:ca:{id}:revoked, vtn:ca:{id}:crlnumber (one hash tag). ARGV: now (s), the
 * most entries wanted. Drops entries of certificates expired for more than a day (TLS
 * refuses them anyway; the day covers clock skew), then returns {next CRL number,
 * members up to ARGV[2]+1} read in the same atomic step, so a higher number never
 * carries an older list. */
static const char crl_lua[] =
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(ARGV[1]) - 86400))\n"
    "local m = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]))\n"
    "local n = redis.call('INCR', KEYS[2])\n"
    "return {n, m}\n";

const char *const wk_script_src[WK_SCRIPT__COUNT] = {
    [WK_SCRIPT_CLAIM] = claim_lua,
    [WK_SCRIPT_CAD] = cad_lua,
    [WK_SCRIPT_REGISTER] = register_lua,
    [WK_SCRIPT_PROVISION] = provision_lua,
    [WK_SCRIPT_POP] = pop_lua,
    [WK_SCRIPT_VENCANCEL] = vencancel_lua,
    [WK_SCRIPT_CANCELED] = canceled_lua,
    [WK_SCRIPT_APIDELETE] = apidelete_lua,
    [WK_SCRIPT_REREG] = rereg_lua,
    [WK_SCRIPT_CERTBIND] = certbind_lua,
    [WK_SCRIPT_CERTUNBIND] = certunbind_lua,
    [WK_SCRIPT_CERTREVOKE] = certrevoke_lua,
    [WK_SCRIPT_CRL] = crl_lua,
};

const char *const wk_script_name[WK_SCRIPT__COUNT] = {
    [WK_SCRIPT_CLAIM] = "claim",
    [WK_SCRIPT_CAD] = "cad",
    [WK_SCRIPT_REGISTER] = "register",
    [WK_SCRIPT_PROVISION] = "provision",
    [WK_SCRIPT_POP] = "pop",
    [WK_SCRIPT_VENCANCEL] = "vencancel",
    [WK_SCRIPT_CANCELED] = "canceled",
    [WK_SCRIPT_APIDELETE] = "apidelete",
    [WK_SCRIPT_REREG] = "rereg",
    [WK_SCRIPT_CERTBIND] = "certbind",
    [WK_SCRIPT_CERTUNBIND] = "certunbind",
    [WK_SCRIPT_CERTREVOKE] = "certrevoke",
    [WK_SCRIPT_CRL] = "crl",
};
