from django.urls import path

from jobs import views

urlpatterns = [
    path('jobs/', views.create_job, name='create-job'),
    path('jobs/<int:pk>/', views.job_status, name='job-status'),
]
