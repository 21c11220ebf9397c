-- Secure mode: mint an auth token, then redeem it for a session. Both
-- requests count; each minted token is redeemed once by the same user.
dofile("bench/common.lua")
local n = 0
local ready = {}
function request()
  local t = table.remove(ready)
  if t then
    local body = string.format('{"userId":"%s","deviceId":"bench","authToken":"%s"}', t.user, t.token)
    return wrk.format("POST", "/api/v3/sessions", { ["X-API-Key"] = api_key, ["Content-Type"] = "application/json" }, body)
  end
  n = n + 1
  -- One user per wrk thread: whichever mint answers first, its token
  -- belongs to the user the next redemption names.
  local user = string.format("secure-%d", thread_id or 0)
  return wrk.format("POST", "/api/v4/authentication/token", { ["X-Server-Key"] = server_key, ["Content-Type"] = "application/json" }, string.format('{"userId":"%s"}', user))
end
function response(status, headers, body)
  if status == 200 and string.sub(body, 1, 7) == "kwauth_" then
    table.insert(ready, { user = string.format("secure-%d", thread_id or 0), token = body })
  end
end
