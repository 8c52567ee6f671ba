DROP TABLE desktop_views;
DROP TABLE desktop_tunnels;
