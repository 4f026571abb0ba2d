# connect-plugin: the Amazon Connect telephony plugin for ID Contact, as a container image.
# Build: docker build -t connect-plugin .   Run and configure: deploy/README.md ("Docker").
# No secret goes into the image: keys and tokens come from the environment or mounted files.

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
# Only what the package is built from (.dockerignore admits nothing else into the context).
COPY pyproject.toml setup.cfg README.md ./
COPY connect_plugin ./connect_plugin
COPY migrations ./migrations
COPY web_assets ./web_assets
RUN python -m venv /opt/connect-plugin \
    && /opt/connect-plugin/bin/pip install --no-cache-dir --disable-pip-version-check ".[postgres]"

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 connect-plugin \
    && useradd --system --uid 10001 --gid connect-plugin --home-dir /var/lib/connect-plugin \
       --no-create-home --shell /usr/sbin/nologin connect-plugin \
    && install -d -m 0700 -o connect-plugin -g connect-plugin /var/lib/connect-plugin
COPY --from=build /opt/connect-plugin /opt/connect-plugin
ENV PATH="/opt/connect-plugin/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CONNECT_PLUGIN_ADDRESS=0.0.0.0 \
    CONNECT_PLUGIN_PORT=8000
# Without a settings file the SQLite default (var/connect-plugin.sqlite3) lands here, in the volume.
WORKDIR /var/lib/connect-plugin
VOLUME ["/var/lib/connect-plugin"]
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]
STOPSIGNAL SIGTERM
CMD ["connect-plugin", "serve"]
