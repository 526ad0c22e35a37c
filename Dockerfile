# One image for web, worker and beat.
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=crm_console.settings
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN DJANGO_DEBUG=false DJANGO_SECRET_KEY=collectstatic-only DJANGO_SUPPRESSION_HASH_KEY=collectstatic-only \
    python manage.py collectstatic --noinput
EXPOSE 8000
# gunicorn.conf.py (read from /app): workers, threads, keep-alive, serving warm-up
CMD ["gunicorn", "crm_console.wsgi", "--bind", "0.0.0.0:8000"]
