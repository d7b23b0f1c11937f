# syntax=docker/dockerfile:1
# The gpufleet image: one image for `serve`, `agent`, `db upgrade` and `demo`.
#
# BASE_IMAGE is any Debian-based image with python3 (3.11+) and its venv module. The default
# is the local base that scripts/build-image makes with mmdebstrap (no registry needed);
# where a registry is reachable, `--build-arg BASE_IMAGE=docker.io/library/python:3.12-slim`
# works as well. See docs/deploy.md.
#
# The stages are ordered for the layer cache: between commits only the package stage and the
# last layer of the final stage change. Stages have few instructions on purpose: a builder with
# the vfs storage driver copies the whole root filesystem for every instruction, cached or not.
ARG BASE_IMAGE=localhost/gpufleet-base:bookworm

# What to install, read from pyproject.toml: an edit there that leaves the dependencies alone
# yields the same files, so the dependency layers below stay cached.
FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /src/pyproject.toml
RUN python3 -c 'import tomllib; p = tomllib.load(open("/src/pyproject.toml", "rb")); \
        open("/requirements.txt", "w").write("\n".join(p["project"]["dependencies"])); \
        open("/build-requirements.txt", "w").write("\n".join(p["build-system"]["requires"]))'

# The runtime dependencies, from wheels only (no compiler anywhere), in a virtual environment
# without the installers. The package goes to /opt/gpufleet-app (its own small layer); the
# environment finds it through a .pth file and runs it as `gpufleet`.
FROM ${BASE_IMAGE} AS deps
# Behind a TLS-inspecting proxy: the path of its CA bundle, mounted into the build.
ARG PIP_CA_BUNDLE=
ARG PIP_INDEX_URL=https://pypi.org/simple
COPY --from=requirements /requirements.txt /src/requirements.txt
RUN python3 -m venv /opt/gpufleet \
    && /opt/gpufleet/bin/pip install --disable-pip-version-check --no-cache-dir \
        ${PIP_CA_BUNDLE:+--cert "$PIP_CA_BUNDLE"} --only-binary=:all: -r /src/requirements.txt \
    && /opt/gpufleet/bin/pip uninstall -q -y pip setuptools \
    && echo /opt/gpufleet-app \
        > "$(/opt/gpufleet/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/gpufleet-app.pth" \
    && ln -s /opt/gpufleet-app/bin/gpufleet /opt/gpufleet/bin/gpufleet

# The build backend, apart from the runtime environment, so the package stage stays small.
FROM ${BASE_IMAGE} AS builder
ARG PIP_CA_BUNDLE=
ARG PIP_INDEX_URL=https://pypi.org/simple
COPY --from=requirements /build-requirements.txt /src/build-requirements.txt
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip install --disable-pip-version-check --no-cache-dir \
        ${PIP_CA_BUNDLE:+--cert "$PIP_CA_BUNDLE"} --only-binary=:all: -r /src/build-requirements.txt

# The package itself, byte-compiled now by the image's Python because the root filesystem is
# read-only at run time. Its command runs with the runtime environment's interpreter.
FROM builder AS package
COPY . /src
RUN /opt/build/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
        --no-compile --target /opt/gpufleet-app /src \
    && sed -i '1s|.*|#!/opt/gpufleet/bin/python|' /opt/gpufleet-app/bin/gpufleet \
    && python3 -m compileall -q /opt/gpufleet-app

# What ships. A fixed numeric user so Kubernetes' runAsNonRoot can check it; /data holds the
# SQLite file. The configuration comes before the large copies (cheaper steps with vfs).
FROM ${BASE_IMAGE}
RUN groupadd --system --gid 65532 gpufleet \
    && useradd --system --uid 65532 --gid 65532 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin gpufleet \
    && mkdir /data && chown 65532:65532 /data
ENV PATH=/opt/gpufleet/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GPUFLEET_HOST=0.0.0.0 \
    GPUFLEET_DATABASE_URL=sqlite:////data/gpufleet.db
WORKDIR /data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["gpufleet"]
CMD ["serve"]
USER 65532:65532
COPY --from=deps /opt/gpufleet /opt/gpufleet
# The only layer that changes when the dependencies do not.
COPY --from=package /opt/gpufleet-app /opt/gpufleet-app
