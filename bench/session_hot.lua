-- Sessions for users already stored, 80 % of requests going to 20 % of
-- the users (KW_USERS, seeded as user-0 … user-N-1): a skewed, realistic
-- access pattern that a cache with a good admission policy keeps in memory.
dofile("bench/common.lua")
local users = tonumber(os.getenv("KW_USERS"))
local hot = math.floor(users / 5)
function init()
  math.randomseed(os.time() + thread_id * 7919)
end
function request()
  local n
  if math.random() < 0.8 then
    n = math.random(0, hot - 1)
  else
    n = math.random(hot, users - 1)
  end
  local body = string.format('{"userId":"user-%d","deviceId":"bench"}', n)
  return wrk.format("POST", "/api/v3/sessions", { ["X-API-Key"] = api_key, ["Content-Type"] = "application/json" }, body)
end
