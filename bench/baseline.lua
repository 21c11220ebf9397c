wrk.method = "GET"
wrk.path = "/healthz"
