from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "tutorial_project.orders"
    label = "orders"
