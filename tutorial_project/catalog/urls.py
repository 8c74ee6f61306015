from django.urls import path

from tutorial_project.catalog import views

app_name = "catalog"
urlpatterns = [
    path("products/", views.products, name="product-list"),
    path("products/<str:sku>/", views.product_detail, name="product-detail"),
]
