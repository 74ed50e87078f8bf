-- Code exchange: POST /oauth2/token with a fresh authorization code each time (codes are single use).
-- BENCH_CODES: a file of codes, one a line, shared out between the threads. Once a thread has used all of its
-- codes it sends "spent", which the server refuses (counted in http_errors: mint more codes).
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local codes, used, prefix
local headers = {}

setup = common.setup
done = common.done

function init(args)
  codes = common.lines(common.env("BENCH_CODES"), tonumber(common.env("BENCH_THREADS")), thread_index)
  used = 0
  prefix = "grant_type=authorization_code&redirect_uri=" .. common.env("BENCH_REDIRECT_FORM") ..
    "&client_id=" .. common.env("BENCH_CLIENT_ID") .. "&client_secret=" .. common.env("BENCH_CLIENT_SECRET") ..
    "&code="
end

function request()
  used = used + 1
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  return wrk.format("POST", "/oauth2/token", headers, prefix .. (codes[used] or "spent"))
end
