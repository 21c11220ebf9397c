-- Shared by the wrk scripts: settings come from environment variables the
-- benchmark command sets, so no secret is written into a file.
api_key = os.getenv("KW_API_KEY")
server_key = os.getenv("KW_SERVER_KEY")
admin_token = os.getenv("KW_ADMIN_TOKEN")

local thread_id = 0
function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end
