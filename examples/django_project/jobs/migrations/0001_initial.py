from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name='Job',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name='ID')),
                ('task_name', models.CharField(max_length=64)),
                ('message', models.JSONField()),
                ('task_id', models.CharField(blank=True, default='', max_length=64)),
                ('status', models.CharField(
                    choices=[('new', 'New'), ('queued', 'Queued'), ('done', 'Done'),
                             ('failed', 'Failed')],
                    default='new', max_length=16)),
                ('result', models.JSONField(blank=True, null=True)),
                ('error_type', models.CharField(blank=True, default='', max_length=128)),
                ('error_message', models.TextField(blank=True, default='')),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('finished', models.DateTimeField(blank=True, null=True)),
            ],
        ),
    ]
