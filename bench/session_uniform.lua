-- Sessions for users already stored, each request a user drawn uniformly
-- from all of them (KW_USERS, seeded as user-0 … user-N-1): the worst case
-- for a cache of hot users.
dofile("bench/common.lua")
local users = tonumber(os.getenv("KW_USERS"))
function init()
  math.randomseed(os.time() + thread_id * 7919)
end
function request()
  local body = string.format('{"userId":"user-%d","deviceId":"bench"}', math.random(0, users - 1))
  return wrk.format("POST", "/api/v3/sessions", { ["X-API-Key"] = api_key, ["Content-Type"] = "application/json" }, body)
end
