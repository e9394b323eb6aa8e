# Index Alert Bot: the worker in a container. State (SQLite by default) lives on the /data
# volume; with compose.yaml it lives in PostgreSQL instead. See README, "Deploy".
#   docker build -t index-alert-bot .
#   docker run -d --name alert-bot -e TELEGRAM_BOT_TOKEN -e TELEGRAM_CHAT_ID \
#     -v alert-bot-data:/data index-alert-bot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The lock first (its layer is cached until requirements.txt changes): the exact versions the
# tests ran with, the same file cloud buildpacks install from.
COPY requirements.txt ./
RUN python -m pip install -r requirements.txt

COPY pyproject.toml README.md config.yaml config.schema.json ./
COPY bot ./bot
RUN python -m pip install --no-deps . \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home bot \
    && mkdir -p /data \
    && chown bot:bot /data

# The shipped config (mount your own over it, or point BOT_CONFIG into /data). State defaults
# to a SQLite file on the volume; compose.yaml sets DATABASE_URL to PostgreSQL instead.
ENV BOT_CONFIG=/app/config.yaml \
    DATABASE_URL=sqlite:////data/bot-state.sqlite \
    BOT_HEALTH_FILE=/data/health

USER bot
VOLUME ["/data"]

# Healthy while the worker's event loop beats /data/health (every few seconds, markets open
# or not): a dead or stuck process turns the container unhealthy.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot", "healthcheck"]

# SIGTERM (docker stop) finishes the current cycle and in-flight sends, then exits 0.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot", "run"]
