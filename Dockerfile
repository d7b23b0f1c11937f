# syntax=docker/dockerfile:1
# The gpufleet image: one image for `serve`, `agent`, `db upgrade` and `demo`.
#
# BASE_IMAGE is any Debian-based image with python3 (3.11+) and its venv module. The default
# is the local base that scripts/build-image makes with mmdebstrap (no registry needed);
# where a registry is reachable, `--build-arg BASE_IMAGE=docker.io/library/python:3.12-slim`
# works as well. See docs/deploy.md.
ARG BASE_IMAGE=localhost/gpufleet-base:bookworm

# The dependencies, in a virtual environment that changes only with pyproject.toml.
FROM ${BASE_IMAGE} AS deps
# Behind a TLS-inspecting proxy: the path of its CA bundle, mounted into the build.
ARG PIP_CA_BUNDLE=
ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml /src/pyproject.toml
# Wheels only (no compiler anywhere), and the build backend for the package stage.
RUN python3 -m venv /opt/gpufleet \
    && python3 -c 'import tomllib; p = tomllib.load(open("/src/pyproject.toml", "rb")); \
        print("\n".join(p["project"]["dependencies"] + p["build-system"]["requires"]))' \
        > /src/requirements.txt \
    && /opt/gpufleet/bin/pip install ${PIP_CA_BUNDLE:+--cert "$PIP_CA_BUNDLE"} \
        --only-binary=:all: -r /src/requirements.txt \
    # The package lives in /opt/gpufleet-app (its own small layer); the venv finds it.
    && echo /opt/gpufleet-app \
        > "$(/opt/gpufleet/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/gpufleet-app.pth" \
    && ln -s /opt/gpufleet-app/bin/gpufleet /opt/gpufleet/bin/gpufleet

# The same environment without the installers, as it ships.
FROM deps AS runtime-venv
RUN /opt/gpufleet/bin/pip uninstall -q -y setuptools pip

# The package itself, byte-compiled now because the root filesystem is read-only at run time.
FROM deps AS package
RUN --mount=type=bind,source=.,target=/src,rw \
    /opt/gpufleet/bin/pip install -q --no-deps --no-build-isolation --target /opt/gpufleet-app /src \
    && /opt/gpufleet/bin/python -m compileall -q /opt/gpufleet-app

FROM ${BASE_IMAGE}
# A fixed numeric id so Kubernetes' runAsNonRoot can check it; /data holds the SQLite file.
RUN groupadd --system --gid 65532 gpufleet \
    && useradd --system --uid 65532 --gid 65532 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin gpufleet \
    && mkdir /data && chown 65532:65532 /data
COPY --from=runtime-venv /opt/gpufleet /opt/gpufleet
COPY --from=package /opt/gpufleet-app /opt/gpufleet-app
ENV PATH=/opt/gpufleet/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GPUFLEET_HOST=0.0.0.0 \
    GPUFLEET_DATABASE_URL=sqlite:////data/gpufleet.db
USER 65532:65532
WORKDIR /data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["gpufleet"]
CMD ["serve"]
