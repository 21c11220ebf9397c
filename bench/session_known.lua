-- Sessions for 1,000 users that already exist and do not change.
dofile("bench/common.lua")
local n = 0
function request()
  n = n + 1
  local body = string.format('{"userId":"known-%d","deviceId":"bench"}', n % 1000)
  return wrk.format("POST", "/api/v3/sessions", { ["X-API-Key"] = api_key, ["Content-Type"] = "application/json" }, body)
end
