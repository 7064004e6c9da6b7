/**
 * The Lua scripts of the Redis limiter: each check is one atomic script. ARGV[1] is the time in
 * ms, or "" to use Redis' own clock (TIME), so instances with skewed clocks share one limit.
 * Token buckets are hashes `{tokens, at}` refilled on read; concurrency slots are sorted sets of
 * lease ids scored by their expiry.
 */

const PRELUDE = `
local now
if ARGV[1] ~= "" then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function bucket(key, tpm)
  local h = redis.call('HMGET', key, 'tokens', 'at')
  if not h[1] then return tpm end
  return math.min(tpm, tonumber(h[1]) + math.max(0, now - tonumber(h[2])) * tpm / 60000)
end
local function save(key, tpm, tokens)
  redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', key, math.max(120000, math.ceil((tpm - tokens) / (tpm / 60000)) + 1000))
end
`;

/**
 * Admits the requests of one key that arrived together, in order, as if each were checked alone.
 * Nothing changes after a refusal, so the admitted requests are always the first k and every
 * later one is refused for the same reason: the answer is one line for the whole group.
 * KEYS: requests (GCRA tat), tokens (bucket), slots (zset).
 * ARGV: now, rpm, capacity, tpm, max concurrency (-1: none), lease ttl ms, tokens to debit,
 * count of requests n, count of leases to release r, then n lease ids, then r lease ids (what
 * earlier requests of this key left to settle). Returns: k (admitted), the refusal reason of the
 * others, their retry after ms, the request tat before the first (exact), tokens left, and the
 * time used (exact), so the client can repeat the script's arithmetic for each request's backlog.
 * A refused request changes nothing but that settlement.
 */
export const ADMIT = PRELUDE + `
local rpm, cap, tpm, maxc = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ttl, debit, n, r = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
for i = 10 + n, 9 + n + r, 1000 do
  redis.call('ZREM', KEYS[3], unpack(ARGV, i, math.min(i + 999, 9 + n + r)))
end
local tokens = 0
if tpm > 0 then
  tokens = bucket(KEYS[2], tpm)
  if debit > 0 then
    tokens = tokens - debit
    save(KEYS[2], tpm, tokens)
  end
end
local inflight = 0
if maxc >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  inflight = redis.call('ZCARD', KEYS[3])
end
local tat, interval = now, 0
if rpm > 0 then
  interval = 60000 / rpm
  local stored = redis.call('GET', KEYS[1])
  if stored then tat = math.max(tonumber(stored), now) end
end
local start = tat
local k, reason, retry = 0, '', 0
while k < n do
  if maxc >= 0 and inflight >= maxc then
    reason, retry = 'concurrency', 1000
    break
  elseif rpm > 0 and tat - now > (cap - 1) * interval then
    reason, retry = 'rpm', math.ceil(tat - now - (cap - 1) * interval)
    break
  elseif tpm > 0 and tokens < 1 then
    reason, retry = 'tpm', math.ceil((1 - tokens) / (tpm / 60000))
    break
  end
  tat = tat + interval
  inflight = inflight + 1
  k = k + 1
end
if k > 0 and rpm > 0 then redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil(tat - now) + 1000) end
if k > 0 and maxc >= 0 then
  local expires = now + ttl
  for first = 1, k, 500 do
    local members = {}
    for i = first, math.min(first + 499, k) do
      members[#members + 1] = expires
      members[#members + 1] = ARGV[9 + i]
    end
    redis.call('ZADD', KEYS[3], unpack(members))
  end
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return {k, reason, retry, string.format('%.17g', start), tostring(tokens), string.format('%.17g', now)}
`;

/**
 * Settles what finished requests of a key left when no admission of that key carried it.
 * KEYS: tokens, slots. ARGV: now, tpm (-1: none), tokens to debit, lease ids to release.
 */
export const SETTLE = PRELUDE + `
local tpm, debit = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV do redis.call('ZREM', KEYS[2], ARGV[i]) end
if tpm > 0 and debit > 0 then save(KEYS[1], tpm, bucket(KEYS[1], tpm) - debit) end
return 1
`;

/**
 * Renews the leases of requests still running (and puts them back after Redis lost them).
 * KEYS: slots. ARGV: now, lease ttl ms, lease ids.
 */
export const RENEW = PRELUDE + `
local ttl = tonumber(ARGV[2])
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], now + ttl, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`;
