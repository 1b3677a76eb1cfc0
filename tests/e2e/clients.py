"""Client scripts run inside a network namespace (`python -c SCRIPT URL ...`), where the test's own process
cannot reach the gateway: wait until it is ready, then talk to it with the openai SDK, print JSON."""

WAIT_READY = """
import json, sys, time, httpx, openai
url = sys.argv[1]
deadline = time.time() + 120
while time.time() < deadline:
    try:
        if httpx.get(url + "/ready", timeout=2).status_code == 200:
            break
    except httpx.HTTPError:
        pass
    time.sleep(0.3)
"""

# One chat: argv URL MODEL; prints {"model", "content"}.
CHAT = WAIT_READY + """
c = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60)
r = c.chat.completions.create(model=sys.argv[2], messages=[{"role": "user", "content": "hi"}], max_tokens=5)
print(json.dumps({"model": r.model, "content": r.choices[0].message.content}))
"""

# Each model in turn: argv URL MODEL...; prints which models have an engine at the start and after each
# request, then every model's bytes per device (/api/v1/model/status).
TURNS = WAIT_READY + """
client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60)
def loaded():
    models = httpx.get(url + "/v1/models").json()["data"]
    return sorted(m["id"] for m in models if any(e.get("pid") for e in m.get("engines", [])))
print(json.dumps({"start": loaded()}))
for name in sys.argv[2:]:
    r = client.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert r.choices[0].message.content
    print(json.dumps({name: loaded()}))
status = httpx.get(url + "/api/v1/model/status").json()["data"]
print(json.dumps({"bytes": {m["model_name"]: m["device_bytes"] for m in status}}))
"""
