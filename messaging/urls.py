from django.urls import path

from messaging import views

app_name = "messaging"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("new/", views.new_conversation, name="new"),
    path("preferences/", views.preferences, name="preferences"),
    path("<int:pk>/", views.conversation, name="conversation"),
    path("<int:pk>/thread/", views.thread, name="thread"),
    path("<int:pk>/assign/", views.assign, name="assign"),
    path("<int:pk>/status/", views.set_status, name="status"),
    path("<int:pk>/confidential/", views.set_confidential, name="set_confidential"),
    path("attachments/<int:pk>/", views.attachment, name="attachment"),
    path("attachments/<int:pk>/save/", views.save_attachment, name="save_attachment"),
    path("team/", views.team_inbox, name="team_inbox"),
    path("team/new/<int:patient_pk>/", views.team_new_conversation, name="team_new"),
    path("team/templates/", views.reply_templates, name="reply_templates"),
    path("team/templates/<int:pk>/delete/", views.delete_reply_template, name="delete_reply_template"),
]
