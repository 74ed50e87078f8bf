-- Refresh: POST /oauth2/refresh, each refresh token used once. BENCH_REFRESH_TOKENS: a file of refresh tokens,
-- shared out between the threads; each thread keeps a queue: a request takes the oldest token, its answer gives
-- back the next one of the same chain. A refused refresh ends its chain. Give more tokens than connections: wrk
-- calls request() once at start on its first thread to check the script and never sends that request, so one
-- chain is lost there (and a connection without a token would send "none-left", refused and counted).
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local queue, head, tail, prefix
local headers = {}

setup = common.setup
done = common.done

function init(args)
  queue = common.lines(common.env("BENCH_REFRESH_TOKENS"), tonumber(common.env("BENCH_THREADS")), thread_index)
  head, tail = 1, #queue
  prefix = "grant_type=refresh_token&client_id=" .. common.env("BENCH_CLIENT_ID") ..
    "&client_secret=" .. common.env("BENCH_CLIENT_SECRET") .. "&refresh_token="
end

function request()
  local token = "none-left"
  if head <= tail then
    token = queue[head]
    queue[head] = nil
    head = head + 1
  end
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  return wrk.format("POST", "/oauth2/refresh", headers, prefix .. token)
end

function response(status, response_headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then
    tail = tail + 1
    queue[tail] = token
  end
end
