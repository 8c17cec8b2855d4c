//! The login form's HTML, every value escaped, and the headers every page of it carries.

use warp::{
    http::{HeaderValue, StatusCode, header},
    reply::Response,
};

/// What the form carries from the client's request to the `POST`, in hidden fields.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub response_type: String,
    pub scope: Option<String>,
}

/// Text made safe for HTML, in element content and in quoted attribute values alike.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}\
label,input,button{display:block;width:100%;box-sizing:border-box}\
input{margin:.25rem 0 1rem;padding:.5rem}button{padding:.6rem}.error{color:#b00020}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
        escape(value)
    )
}

/// The login form for `request`, with `error` above it and `username` filled in.
pub fn form(
    status: StatusCode,
    request: &Request,
    username: &str,
    error: Option<&str>,
) -> Response {
    let mut fields = hidden("client_id", &request.client_id);
    fields.push_str(&hidden("redirect_uri", &request.redirect_uri));
    fields.push_str(&hidden("response_type", &request.response_type));
    if let Some(state) = &request.state {
        fields.push_str(&hidden("state", state));
    }
    if let Some(scope) = &request.scope {
        fields.push_str(&hidden("scope", scope));
    }
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign in to Gantry</h1>\n\
         <p><strong>{client}</strong> asks to act on your behalf.</p>\n\
         {error}<form method=\"post\">\n{fields}\
         <label for=\"username\">Username</label>\n\
         <input id=\"username\" name=\"username\" value=\"{username}\" autocomplete=\"username\" required autofocus>\n\
         <label for=\"password\">Password</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\n\
         <button type=\"submit\">Sign in</button>\n</form>",
        client = escape(&request.client_id),
        username = escape(username),
    );
    respond(status, document("Sign in to Gantry", &body))
}

/// A page that says why the request cannot go on, without a form and without a redirect.
pub fn refusal(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>This sign-in link cannot be used</h1>\n<p class=\"error\">{}</p>",
        escape(message)
    );
    respond(status, document("Sign in to Gantry", &body))
}

fn respond(status: StatusCode, html: String) -> Response {
    let mut response = Response::new(html.into());
    *response.status_mut() = status;
    secure(&mut response);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Headers of every answer of the login form: never cached, never framed, no referrer.
pub fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
    }
}
