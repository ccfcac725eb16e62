# modelrouter: one replica. Build from the repository root:
#   docker build -t modelrouter .
# deploy/compose.yaml runs several behind a load balancer, with Redis and PostgreSQL.

# ---- build: install the package and its dependencies into /install ----------------
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY modelrouter ./modelrouter
COPY providers ./providers
RUN pip install --no-cache-dir --disable-pip-version-check --prefix=/install .

# ---- run: the installed files only, as an unprivileged user ------------------------
FROM python:3.12-slim
COPY --from=build /install /usr/local
# The call log spools here while the store is unreachable (store.spool_dir).
RUN useradd --system --uid 10001 --home-dir /var/lib/modelrouter --create-home modelrouter
USER modelrouter
WORKDIR /var/lib/modelrouter
ENV PYTHONUNBUFFERED=1
EXPOSE 8080
# Ready = every route has a model whose breaker is not open (GET /readyz answers 200).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status != 200)"]
ENTRYPOINT ["modelrouter"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
