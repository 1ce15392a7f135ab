from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("shelf", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="Note",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("text", models.TextField()),
                ("created", models.DateTimeField(auto_now_add=True)),
                (
                    "book",
                    models.ForeignKey(
                        on_delete=models.deletion.CASCADE, related_name="notes", to="shelf.book"
                    ),
                ),
            ],
            options={"ordering": ("-created", "-id")},
        ),
        migrations.CreateModel(
            name="ReportRun",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("books", models.IntegerField()),
                ("notes", models.IntegerField()),
            ],
        ),
    ]
