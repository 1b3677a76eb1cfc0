"""Discovery: ask the API server where a capability is served, then call it there.

    python examples/multi_server/client.py [http://127.0.0.1:8080]
"""
import sys

from launcher.worker.client import Client

api_server = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"

# Served by the API server's own worker.
client = Client(api_server=api_server, capability={"type": "echo"})
result = client.infer("echo", {"text": ["hello"]})
print("echo from", client.replica_id, "->", result.outputs["output_text"])
client.close()

# Served by the replica registered with it: /route names the replica, the call goes straight there.
client = Client(api_server=api_server, capability={"type": "analyze"})
result = client.infer("analyze", {"tokens": ["a,b,a"]})
print("analyze from", client.replica_id, "->", result.as_dict())
client.close()

# Or let the API server relay it (one endpoint for everything).
client = Client(endpoint=api_server)
print("summarize via the API server ->", client.infer("summarize", {"text": ["the cat saw the dog"]})
      .outputs["report"])
print("words streamed via the API server ->",
      [part.outputs["text_output"] for part in client.infer_stream("words", {"text": ["one two three"]})])
client.close()
