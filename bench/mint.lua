-- Auth-token minting (v4) with the server key.
dofile("bench/common.lua")
local n = 0
function request()
  n = n + 1
  local body = string.format('{"userId":"known-%d"}', n % 1000)
  return wrk.format("POST", "/api/v4/authentication/token", { ["X-Server-Key"] = server_key, ["Content-Type"] = "application/json" }, body)
end
