"""Wire forms shared by the gateway and the worker processes: KServe v2 (tensors, REST bodies, the gRPC
service table and messages), the error envelopes, server-sent events. Imports nothing above it."""
