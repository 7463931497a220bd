FROM python:3.11-slim
WORKDIR /app
# MALLOC_ARENA_MAX: fewer glibc arenas for the many threads, so resident memory flattens (bench/RESULTS.md, soak)
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MALLOC_ARENA_MAX=2
COPY pyproject.toml README.md LICENSE ./
COPY dobby ./dobby
RUN pip install --no-cache-dir . && rm -rf dobby build \
 && useradd --system --home /app dobby && mkdir -p /app/var && chown dobby /app/var
USER dobby
EXPOSE 18096
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:18096/health', timeout=2).status == 200 else 1)"
CMD ["dobby", "serve", "--no-background"]
