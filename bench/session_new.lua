-- Every session creates a new user.
dofile("bench/common.lua")
local n = 0
local run = tostring(os.time())
function request()
  n = n + 1
  local body = string.format('{"userId":"new-%s-%d-%d","deviceId":"bench"}', run, thread_id or 0, n)
  return wrk.format("POST", "/api/v3/sessions", { ["X-API-Key"] = api_key, ["Content-Type"] = "application/json" }, body)
end
