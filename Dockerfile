# The load suite as one image for the Locust master and its workers alike: Locust's official
# image, this package installed, the locustfile inside. Settings come from LOCUST_* variables
# (README: "Running on a cluster"); the image's entry point stays Locust's own `locust`.
#   docker build -t runpod-testkit-locust .
#   docker run -e LOCUST_MODE_MASTER=true -e LOCUST_HOST=... -e RUNPOD_API_KEY runpod-testkit-locust
#   docker run -e LOCUST_MODE_WORKER=true -e LOCUST_MASTER_NODE_HOST=master -e RUNPOD_API_KEY ...
ARG LOCUST_VERSION=2.47.0
FROM locustio/locust:${LOCUST_VERSION}

COPY --chown=locust:locust pyproject.toml README.md /home/locust/runpod-testkit/
COPY --chown=locust:locust runpod_testkit /home/locust/runpod-testkit/runpod_testkit
COPY --chown=locust:locust docs /home/locust/runpod-testkit/docs
COPY --chown=locust:locust contract /home/locust/runpod-testkit/contract
RUN pip install --no-cache-dir "/home/locust/runpod-testkit[load]" && rm -rf /home/locust/runpod-testkit

COPY --chown=locust:locust loadtests /home/locust/loadtests
ENV LOCUST_LOCUSTFILE=/home/locust/loadtests/locustfile.py
