"""Request dependencies: the app's state, and the index in service (503 until there is one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from web.state import AppState, View


def current_state(request: Request) -> AppState:
    """The app's state.

    Args:
        request: The request.

    Returns:
        The state of the app that serves it.
    """
    return request.app.state.web


def ready_view(request: Request) -> View:
    """The index in service.

    Args:
        request: The request.

    Returns:
        The view of the index in service.

    Raises:
        HTTPException: 503 while the index is loading (try again in 5 s) or failed to open.
    """
    state = current_state(request)
    view = state.view
    if view is None:
        headers = None if state.error else {"Retry-After": "5"}
        raise HTTPException(503, detail=state.not_ready(), headers=headers)
    return view


State = Annotated[AppState, Depends(current_state)]
Ready = Annotated[View, Depends(ready_view)]
