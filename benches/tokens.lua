-- wrk: every request carries the next token of the file named by PORTCULLIS_TOKENS, so a run
-- with more tokens than the verified-token cache holds measures cache misses.
local tokens = {}
local i = 0

function init(args)
  for line in io.lines(os.getenv("PORTCULLIS_TOKENS")) do
    tokens[#tokens + 1] = line
  end
end

function request()
  i = i % #tokens + 1
  return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. tokens[i] })
end
