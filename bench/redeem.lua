-- wrk script for bench/redemption_bench.py: every request redeems a different participant's
-- one-time code (one body per line in the file named by the first script argument).
local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  bodies = {}
  nthreads = tonumber(args[3])
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  key = args[2]
  n = 0
end

function request()
  local index = (n * nthreads + id - 1) % #bodies + 1
  n = n + 1
  return wrk.format("POST", "/api/v1/outlet/redemptions",
                    {["Content-Type"] = "application/json", ["X-Api-Key"] = key}, bodies[index])
end
