# One image for every alloysync service: web (gunicorn + admin), worker, beat and flower.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 1000 alloysync

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are collected into the image and served by whitenoise; the key is only for this step.
RUN DJANGO_SECRET_KEY=collectstatic-only DJANGO_DEBUG=false python manage.py collectstatic --noinput \
    && mkdir -p /app/var && chown -R alloysync /app/var

USER alloysync
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
