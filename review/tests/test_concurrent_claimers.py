"""Two reviewers working a queue of 200 items at the same time label every item exactly once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from calibration.models import CalibrationLabel
from flk_site.testing import logged_in
from review.models import ReviewItem, ReviewLabel


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_reviewers_label_each_of_200_items_exactly_once(make_user, queue_items, settings):
    settings.FLK_REVIEW_SECOND_OPINION_RATE = 0.0
    items = queue_items(200)
    users = [make_user("alice"), make_user("bob")]
    start = threading.Barrier(2)
    seen: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(user) -> None:
        try:
            client = logged_in(user)
            mine = seen.setdefault(user.username, [])
            start.wait()
            while True:
                location = client.post("/review/next/")["Location"]
                if location == "/review/":
                    return
                item_id = int(location.rstrip("/").rsplit("/", 1)[1])
                mine.append(item_id)
                assert client.post(f"/review/item/{item_id}/label/", {"label": "benign"}).status_code == 302
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    taken = seen["alice"] + seen["bob"]
    assert sorted(taken) == sorted(i.pk for i in items)  # every item once, none twice
    assert seen["alice"] and seen["bob"]  # both really worked the queue
    assert ReviewLabel.objects.count() == 200
    assert ReviewItem.objects.filter(stage="done").count() == 200
    assert CalibrationLabel.objects.count() == 200
