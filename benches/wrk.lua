-- wrk script for the side-by-side benchmarks, configured by environment variables:
--   PORTCULLIS_VALUES    a file of values, one per line; each request carries the next one in
--                        PORTCULLIS_HEADER (default Authorization) after PORTCULLIS_PREFIX
--                        (default "Bearer "). More values than a cache holds measure misses.
--   PORTCULLIS_DELAY_MS  pause before each request on each connection: connections / delay is
--                        the offered load, for latency below the knee.
local values = {}
local i = 0
local header = os.getenv("PORTCULLIS_HEADER") or "Authorization"
local prefix = os.getenv("PORTCULLIS_PREFIX") or "Bearer "
local pause = tonumber(os.getenv("PORTCULLIS_DELAY_MS") or "")

function init(args)
  local file = os.getenv("PORTCULLIS_VALUES")
  if file then
    for line in io.lines(file) do
      values[#values + 1] = line
    end
  end
end

function request()
  if #values == 0 then
    return wrk.request()
  end
  i = i % #values + 1
  local headers = {}
  for k, v in pairs(wrk.headers) do
    headers[k] = v
  end
  headers[header] = prefix .. values[i]
  return wrk.format(nil, nil, headers)
end

if pause then
  function delay()
    return pause
  end
end
