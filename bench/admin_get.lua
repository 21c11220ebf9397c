-- An admin-token-authenticated GET.
dofile("bench/common.lua")
function request()
  return wrk.format("GET", "/api/v1/admins/me", { ["Authorization"] = "Bearer " .. admin_token })
end
