//! The admin JSON API for workshops and notifications: each handler takes an
//! [`AdminCaller`], calls one admin action ([`crate::admin_actions::workshops`]) and answers
//! its typed result as JSON.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use lablink_schema::outbox::{Delivery, OutboxEvent};
use lablink_schema::wire::{ExtendWorkshop, WorkshopChange, WorkshopRequest};
use serde::Serialize;

use crate::admin_actions::workshops;
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::idempotency::{self, Created};
use crate::state::AppState;

/// `POST /api/admin/workshops`: 201 with the workshop (and a generated invite code, once).
/// With `Idempotency-Key`, a retry answers the first answer (without the invite code).
pub async fn create(
    state: web::Data<AppState>,
    request: HttpRequest,
    AdminCaller(caller): AdminCaller,
    body: web::Json<WorkshopRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    idempotency::once(&state, &request, &caller, &body, || async {
        let created = workshops::create(&state, &caller, body.clone()).await?;
        let location = format!("/api/admin/workshops/{}", created.workshop.id);
        let mut answer = Created::at(location, &created)?;
        if created.invite_code.is_some() {
            answer.without_secret = Some(idempotency::to_json(&created.workshop)?);
        }
        Ok(answer)
    })
    .await
}

/// `GET /api/admin/workshops`: every workshop, the latest start first.
pub async fn list(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(workshops::list(&state).await?))
}

/// `GET /api/admin/workshops/{id}`: its state, plan (planned and done actions), VMs and
/// spend.
pub async fn show(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(workshops::show(&state, *id).await?))
}

/// `GET /api/admin/workshops/{id}/participants`: the instructor's view: the funnel now and
/// each participant's step, the stuck first.
pub async fn participants(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(
            crate::admin_actions::participants::of_workshop(&state, *id)
                .await?
                .1,
        ))
}

/// `PATCH /api/admin/workshops/{id}`: changes its name, time zone label, headcount, spare
/// VMs or roster.
pub async fn edit(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<i64>,
    body: web::Json<WorkshopChange>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(workshops::edit(&state, &caller, *id, body.into_inner()).await?))
}

/// `POST /api/admin/workshops/{id}/end`: ends it now.
pub async fn end(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(workshops::end_now(&state, &caller, *id).await?))
}

/// `POST /api/admin/workshops/{id}/extend` with `{"ends_at"}`.
pub async fn extend(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
    id: web::Path<i64>,
    body: web::Json<ExtendWorkshop>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(workshops::extend(&state, &caller, *id, body.into_inner()).await?))
}

/// One notification with where each of its deliveries stands.
#[derive(Debug, Serialize)]
pub struct NotificationView {
    pub id: i64,
    pub event: String,
    pub subject: String,
    pub created_at: chrono::NaiveDateTime,
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Serialize)]
pub struct DeliveryView {
    pub channel: String,
    pub delivery_key: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub delivered_at: Option<chrono::NaiveDateTime>,
}

/// The newest notifications (of one workshop when `workshop` is set), with their deliveries.
pub async fn read_notifications(
    state: &AppState,
    workshop: Option<i64>,
    limit: i64,
) -> Result<Vec<NotificationView>, ApiError> {
    state
        .read(move |conn| {
            OutboxEvent::list_recent(conn, workshop, limit)?
                .into_iter()
                .map(|event| {
                    let deliveries = Delivery::of_event(conn, event.id)?
                        .into_iter()
                        .map(|d| DeliveryView {
                            channel: d.channel,
                            delivery_key: d.delivery_key,
                            state: d.state,
                            attempts: d.attempts,
                            last_error: d.last_error,
                            delivered_at: d.delivered_at,
                        })
                        .collect();
                    Ok(NotificationView {
                        id: event.id,
                        event: event.kind,
                        subject: event.subject,
                        created_at: event.created_at,
                        deliveries,
                    })
                })
                .collect()
        })
        .await
}

/// `GET /api/admin/workshops/{id}/notifications`: what was sent about it, and to whom.
pub async fn notifications(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    workshops::show(&state, *id).await?;
    Ok(HttpResponse::Ok().json(read_notifications(&state, Some(*id), 200).await?))
}

/// `GET /api/admin/notifications`: the newest notifications with their deliveries.
pub async fn all_notifications(
    state: web::Data<AppState>,
    AdminCaller(_): AdminCaller,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(read_notifications(&state, None, 200).await?))
}

/// `POST /api/admin/notifications/test`: sends a test through every channel now and says
/// what each answered.
pub async fn test_send(
    state: web::Data<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(workshops::test_send(&state, &caller).await?))
}
