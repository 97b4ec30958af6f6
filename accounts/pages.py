"""The accounts' HTML: the login page and the signed-in user's page (values escaped here)."""

from __future__ import annotations

from html import escape

from accounts.users import User

_STYLE = """
body { font-family: "Noto Sans CJK SC", sans-serif; margin: 0; background: #f4f6f8; }
main { max-width: 22rem; margin: 6rem auto; background: #fff; padding: 2rem;
       border-radius: 6px; box-shadow: 0 1px 4px #0002; }
h1 { font-size: 1.2rem; margin-top: 0; }
label { display: block; margin: 1rem 0 .3rem; }
input[type=text], input[type=password] { width: 100%; padding: .5rem; box-sizing: border-box; }
button { margin-top: 1.5rem; padding: .5rem 1.5rem; }
.error { color: #b00020; }
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def login_page(csrf_token: str, next_path: str, name: str = "", error: str = "") -> str:
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _page(
        "登录 · 12345 热线",
        f"""<h1>12345 热线 · 登录 / Sign in</h1>{message}
<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">
<input type="hidden" name="next" value="{escape(next_path)}">
<label for="name">用户名 / User name</label>
<input type="text" id="name" name="name" value="{escape(name)}" autocomplete="username" required>
<label for="password">密码 / Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">登录 / Sign in</button>
</form>""",
    )


def logout_form(csrf_token: str) -> str:
    return (
        '<form method="post" action="/logout" class="logout">'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">'
        '<button type="submit">退出 / Sign out</button></form>'
    )


def account_page(user: User, csrf_token: str) -> str:
    bound = user.extension or user.department
    return _page(
        "账户 · 12345 热线",
        f"""<h1>{escape(user.name)}</h1>
<p>角色 / Role: <span id="role">{escape(user.role.value)}</span></p>
{f"<p>{escape(bound)}</p>" if bound else ""}
{logout_form(csrf_token)}""",
    )
