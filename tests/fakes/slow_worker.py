"""A worker for fault tests: answers after `seconds` (parameter), or streams `n` ticks 0.1 s apart, so a
test can kill the process while a request is in flight."""
import os
import time

from launcher.worker import App

app = App()


@app.capability(type="slow")
def slow(request):
    time.sleep(float(request.parameters.get("seconds", 30)))
    return {"pid": [os.getpid()]}


@app.capability(type="slow", stream=True)
def ticks(request, stream):
    for i in range(int(request.parameters.get("n", 1000))):
        stream.send({"tick": [i], "pid": [os.getpid()]})
        time.sleep(0.1)
