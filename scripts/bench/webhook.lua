-- wrk script for scripts/bench-webhook.sh: every request is a signed GitHub delivery with a
-- delivery id of its own (the body and its signature are the same; GitHub signs only the
-- body), paced by `delay` so the rate is set by connections / (delay + latency).
local counter = 0
local thread_id = 0
local body = os.getenv("WEBHOOK_BODY_CONTENT")
local signature = os.getenv("WEBHOOK_SIGNATURE")
local event = os.getenv("WEBHOOK_EVENT") or "workflow_run"
local pause = tonumber(os.getenv("WEBHOOK_DELAY_MS") or "10")
local run = os.getenv("WEBHOOK_RUN") or "0"

function setup(thread)
  thread_id = thread_id + 1
  thread:set("id", thread_id)
end

function init(args)
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = event
  wrk.headers["X-Hub-Signature-256"] = signature
end

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("bench-%s-%d-%d", run, id, counter)
  return wrk.format(nil, "/api/github/webhook")
end

function delay()
  return pause
end

local non_202 = 0
function response(status, headers, body)
  if status ~= 202 then
    non_202 = non_202 + 1
    if non_202 <= 3 then
      io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
    end
  end
end
