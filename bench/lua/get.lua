-- GET requests from a list, in turn. BENCH_REQUESTS: a file, one request a line: "PATH" or "PATH<TAB>TOKEN"
-- (sent as Authorization: Bearer TOKEN). The requests are formatted once, at start.
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local requests, next_one = {}, 0

setup = common.setup
done = common.done

function init(args)
  for _, line in ipairs(common.lines(common.env("BENCH_REQUESTS"))) do
    local path, token = line:match("^([^\t]+)\t?(.*)$")
    local headers = {}
    if token ~= "" then headers["Authorization"] = "Bearer " .. token end
    requests[#requests + 1] = wrk.format("GET", path, headers)
  end
end

function request()
  next_one = next_one % #requests + 1
  return requests[next_one]
end
